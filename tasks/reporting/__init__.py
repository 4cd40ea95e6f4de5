"""The report's parts: display text, the view its templates render, and the templates."""
