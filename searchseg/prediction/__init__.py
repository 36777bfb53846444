"""Using a final model: the size rule, tiling, PyTorch or ONNX Runtime, folders of images in, masks out."""
