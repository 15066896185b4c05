"""The parts of ``bench/api_accept.py``: the variants it serves, its load generators, its report."""
