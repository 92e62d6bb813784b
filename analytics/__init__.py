"""Analytics over the ScoreStream collections with Polars.

Modules: :mod:`analytics.loaders` (MongoDB to Polars), :mod:`analytics.fold`
(the vectorised fold), :mod:`analytics.trends`, :mod:`analytics.audit`,
:mod:`analytics.export`, :mod:`analytics.simulate`, :mod:`analytics.charts`
and :mod:`analytics.olist`. Import them directly; this package imports
nothing heavy on its own.
"""
