"""Built-in media handling: MIME sniffing, the Pillow image probe and the image processor.

Leaf modules with no database or storage dependencies:

* :mod:`rindle.media.mime` - :func:`~rindle.media.mime.sniff` and the extension table;
* :mod:`rindle.media.image_probe` - dimensions and orientation from the header only;
* :mod:`rindle.media.image_processor` - ``fit``/``fill``/``crop`` renditions.

The default plugins in :mod:`rindle.default_plugins` expose the probe and the processor
through the ``rindle_probe`` and ``rindle_transcode`` hooks.
"""
