"""Data: the evaluation transform, sources of images and their decoding, image folders, the proxy task, named
sources and their split rules, augmentation. Torch-free except `augment` (imported only where training runs).

    transforms  Preprocess (a model card's evaluation transform), the EXIF rule
    source      DataSource (an immutable plan of items) and one threaded pass of decoding over it
    images      Images (a source decoded once, in memory)
    files       hashing, decoding one file, the ImageNet class list, the data root
    folders     image folders (ImageNet layout, named classes, flat)
    proxy       the proxy task's crops of 16 photographs
    sources     named sources ("sample", "proxy-val", a folder, ...) and the calibration/validation rules
    augment     training augmentation (torch)
"""

from .files import DEFAULT_DATA_ROOT, data_root, file_sha256, imagenet_synsets, open_image
from .folders import IMAGE_EXTS, folder_source, is_output_folder, scan_folder
from .images import Images
from .source import UNREADABLE, DataSource, Decoding, Item, batched, items_digest, no_images
from .transforms import (
    CROP_PCT,
    DEFAULT_EXIF,
    EXIF_HELP,
    EXIF_MODES,
    IMAGENET_MEAN,
    IMAGENET_STD,
    Preprocess,
    center_crop,
    check_exif,
    crop,
    normalize,
    orient,
    preprocess,
    resize_shorter,
    to_rgb,
)

__all__ = ["CROP_PCT", "DEFAULT_DATA_ROOT", "DEFAULT_EXIF", "EXIF_HELP", "EXIF_MODES", "IMAGENET_MEAN", "IMAGENET_STD",
           "IMAGE_EXTS", "UNREADABLE", "DataSource", "Decoding", "Images", "Item", "Preprocess", "batched",
           "center_crop", "check_exif", "crop", "data_root", "file_sha256", "folder_source", "imagenet_synsets",
           "is_output_folder", "items_digest", "no_images", "normalize", "open_image", "orient", "preprocess",
           "resize_shorter", "scan_folder", "to_rgb"]
