"""Request and response bodies (pydantic), one module per resource: validation and the OpenAPI
document come from these. :mod:`.fields` has the field types they share."""
