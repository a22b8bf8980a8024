"""moto_server whose base-table Query reads the queried partition only, as DynamoDB does.

moto 5.2.5 answers every Query on a table (not an index) by listing and sorting the whole table,
then keeping the partition asked for: each call costs O(table size · log). At a million records a
page of the export reads a few small partitions yet pays for the whole table on every call, so
`--export-path-emulator 1000000` could not finish. This launcher, for the bench only, hands
`Table.query` the partition's items instead of the whole table; everything after that (key
conditions, sorting, paging, filters, projections, capacity) is moto's own code, unchanged, so the
answers are the same. Index queries and scans are untouched. The test suite runs stock moto.
"""

import logging
import sys
import threading

from moto.dynamodb.models import table as moto_table
from moto.server import main

_partition = threading.local()
_query = moto_table.Table.query
_all_items = moto_table.Table.all_items


def _query_partition(self, hash_key, *args, **kwargs):
    index_name = args[6] if len(args) > 6 else kwargs.get("index_name")
    if index_name or hash_key is None:
        return _query(self, hash_key, *args, **kwargs)
    _partition.key = hash_key
    try:
        return _query(self, hash_key, *args, **kwargs)
    finally:
        _partition.key = None


def _items(self):
    key = getattr(_partition, "key", None)
    if key is None:
        return _all_items(self)
    part = self.items.get(key)
    if not part:
        return []
    return list(part.values()) if self.range_key_attr else [part]


moto_table.Table.query = _query_partition
moto_table.Table.all_items = _items

if __name__ == "__main__":
    # One line per request on stderr costs a tenth of the server's time under load.
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    sys.exit(main())
