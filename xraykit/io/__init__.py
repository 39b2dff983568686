"""Reading traces: from bytes on disk or in Python to the frames and the document store.

The flow, one module per step: :mod:`~xraykit.io.source` opens a path or stream once
(gzip, UTF-16, size limits); :mod:`~xraykit.io.reader` reads every format, line by line,
with the C scanner (``_scan.c``, driven through :mod:`~xraykit.io.columns`) as its fast path;
:mod:`~xraykit.io.assemble` turns the rows into the frames once everything is read;
:mod:`~xraykit.io.docstore` keeps the original documents compressed; :mod:`~xraykit.io.saved`
is the saved-TraceSet format. :mod:`~xraykit.io.ids` and :mod:`~xraykit.io.memory` serve them.
"""
