"""Reading PostgreSQL's `EXPLAIN (ANALYZE, FORMAT JSON)` plans in tests."""


def rows_read(node, table):
    """The rows the plan `node` and those under it read from `table`: those each scan of it
    returned and those its filter removed, times its runs."""
    own = 0
    if node.get("Relation Name") == table:
        own = (node["Actual Rows"] + node.get("Rows Removed by Filter", 0)) * node["Actual Loops"]
    return own + sum(rows_read(child, table) for child in node.get("Plans", []))
