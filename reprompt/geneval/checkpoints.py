"""The models GenEval's official scorer uses, as transformers checkpoints: its mmdet Mask2Former Swin-S and
open_clip's ViT-L/14 "openai". A module of its own (no numpy, no torch), read by the scorer's config and by
the detector and colour classifier that load them."""

DEFAULT_MASK2FORMER = "facebook/mask2former-swin-small-coco-instance"
DEFAULT_CLIP = "openai/clip-vit-large-patch14"
