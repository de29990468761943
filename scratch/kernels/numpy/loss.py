"""loss kernels (numpy backend)."""

__all__: list[str] = []
