"""norm kernels (torch backend)."""

__all__: list[str] = []
