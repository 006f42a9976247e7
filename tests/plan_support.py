"""Reading PostgreSQL's `EXPLAIN (ANALYZE, FORMAT JSON)` plans in tests."""


def rows_read(node, table):
    """The rows the plan `node` and those under it read from `table`: those each scan of it
    returned and those its filter removed, times its runs."""
    own = 0
    if node.get("Relation Name") == table:
        own = (node["Actual Rows"] + node.get("Rows Removed by Filter", 0)) * node["Actual Loops"]
    return own + sum(rows_read(child, table) for child in node.get("Plans", []))


def scan_runs(node, table):
    """How many times the plan `node` and those under it started a scan of `table` (each scan's
    loops; a scan never run counts none)."""
    own = node["Actual Loops"] if node.get("Relation Name") == table else 0
    return [*([own] if own else []), *(n for child in node.get("Plans", []) for n in scan_runs(child, table))]
