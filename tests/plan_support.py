"""Reading PostgreSQL's `EXPLAIN (ANALYZE, FORMAT JSON)` plans in tests."""


def _scans(node, table):
    """The scans of `table` in the plan `node` and those under it, in plan order."""
    if node.get("Relation Name") == table:
        yield node
    for child in node.get("Plans", []):
        yield from _scans(child, table)


def rows_read(node, table):
    """The rows the plan `node` and those under it read from `table`: those each scan of it
    returned and those its filter removed, times its runs."""
    return sum((scan["Actual Rows"] + scan.get("Rows Removed by Filter", 0)) * scan["Actual Loops"]
               for scan in _scans(node, table))


def scan_runs(node, table):
    """How many times the plan `node` and those under it started a scan of `table` (each scan's
    loops; a scan never run counts none)."""
    return [scan["Actual Loops"] for scan in _scans(node, table) if scan["Actual Loops"]]
