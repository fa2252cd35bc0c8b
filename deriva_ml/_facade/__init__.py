"""The topic classes ``DerivaML`` is made of (facade layer: only ``deriva_ml._ml``, the runners and the CLI use them).

``deriva_ml._ml.DerivaML`` builds the ports and services; each class here adds the user calls of one topic,
each turning a call into a call of a service, a dataset or execution function, on those ports. They hold
no state of their own (``FacadeBase`` declares what ``DerivaML.__init__`` sets), little logic beyond that
delegation, and a class reaches only its own methods and that state (checked in ``tests/facade``):

- :mod:`._base`: what every topic class works through (the ports and services ``DerivaML.__init__`` sets);
- :mod:`._schema`: the catalog model, domain tables, vocabularies and terms, RID resolution;
- :mod:`._executions`: workflows, executions, their nesting and metrics;
- :mod:`._datasets`: datasets, their members, versions, types and bags;
- :mod:`._assets`: asset tables, files and the asset cache;
- :mod:`._features`: features and their values;
- :mod:`._data`: domain rows (query, insert, update, delete) and catalog reads and URLs.
"""
