"""Preprocessing estimators: face detection, landmarks and ROI crops, windows."""
