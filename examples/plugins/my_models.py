"""A plugin: a model and a loss defined outside searchseg, each with a parameter of its own that a space can search.

Name the module under ``fixed: {plugins: my_models}`` and make it importable by every process that trains
(``PYTHONPATH=examples/plugins``, on every machine of a cluster). The keyword defaults declared at registration
are the entries' parameters: ``arch.tiny_fcn.width`` and ``loss.smooth_ce.smoothing`` in a space or ``--set``.
"""

from torch import nn

from searchseg import register_arch, register_loss


@register_arch("tiny_fcn", width=16)
def tiny_fcn(in_channels: int, classes: int, width: int) -> nn.Module:
    """Three convolutions at full resolution: a baseline that needs no encoder (the seeds' plain FCN idea)."""
    width = int(width)
    return nn.Sequential(
        nn.Conv2d(in_channels, width, 3, padding=1), nn.BatchNorm2d(width), nn.ReLU(inplace=True),
        nn.Conv2d(width, width, 3, padding=2, dilation=2), nn.BatchNorm2d(width), nn.ReLU(inplace=True),
        nn.Conv2d(width, classes, 1),
    )


@register_loss("smooth_ce", smoothing=0.1)
def smooth_ce(context, smoothing: float) -> nn.Module:
    """Cross-entropy with label smoothing (multi-class masks)."""
    return nn.CrossEntropyLoss(ignore_index=context.ignore_index, label_smoothing=float(smoothing))
