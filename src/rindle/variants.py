"""Variant specs for profiles: ``variants.Image``, ``Video``, ``Audio``, ``Waveform``."""

from rindle.domain.variants import Audio, Image, VariantSpec, Video, Waveform

__all__ = ["Audio", "Image", "VariantSpec", "Video", "Waveform"]
