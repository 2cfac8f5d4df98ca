"""bookvec: embeddings of books learned from the pages they link to.

The root package holds only what every part shares: typed errors (``bookvec.errors``) and
where state lives (``bookvec.settings``). Training is ``bookvec.model``, the vector store is
``bookvec.indexer``, the command line is ``bookvec.cli``.
"""

__version__ = "0.1.0"
