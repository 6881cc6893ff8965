"""Exchange with other tools: NONMEM-style data sets (nonmem) and model code (model_code)."""

__all__: list[str] = []
