"""Load the Olist marketing-funnel CSVs as ScoreStream events.

The "Marketing Funnel by Olist" data set contains real, anonymised B2B leads:
sellers who filled in a form on a landing page (marketing qualified leads)
and, for some of them, the closed deal. It is licensed CC BY-NC-SA 4.0
(non-commercial), so ScoreStream never ships it: the caller names a folder
that contains ``olist_marketing_qualified_leads_dataset.csv`` and
``olist_closed_deals_dataset.csv``.

Each lead gives one ``form_submit`` event on its first contact date
(midnight UTC, since the file has no time of day) with its ``origin`` and
``landing_page_id`` as properties, and each closed deal one ``deal_won``
event at ``won_date`` (read as UTC) with the deal's segment and lead type.
``deal_won`` is meant as the outcome of a backtest
(:func:`analytics.simulate.simulate` with ``outcome="deal_won"``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import polars as pl

LEADS_FILE = "olist_marketing_qualified_leads_dataset.csv"
DEALS_FILE = "olist_closed_deals_dataset.csv"
SOURCE = "olist"

#: Columns of the frame :func:`load_olist` returns.
COLUMNS = ["source", "event_id", "lead_id", "type", "occurred_at", "properties"]


def _require(folder: Path) -> None:
    missing = [name for name in (LEADS_FILE, DEALS_FILE) if not (folder / name).is_file()]
    if missing:
        raise FileNotFoundError(
            f"{folder} lacks {', '.join(missing)}; download the Olist marketing-funnel "
            "data set and pass the folder that contains both CSV files"
        )


def load_olist(folder: str | Path) -> pl.DataFrame:
    """Read the two Olist CSV files and return their events in one frame.

    Parameters
    ----------
    folder : str or pathlib.Path
        Folder with ``olist_marketing_qualified_leads_dataset.csv`` and
        ``olist_closed_deals_dataset.csv``.

    Returns
    -------
    polars.DataFrame
        :data:`COLUMNS`: ``source`` is ``"olist"``, ``lead_id`` the
        ``mql_id``, ``event_id`` ``"<mql_id>:form_submit"`` or
        ``"<mql_id>:deal_won"``, ``occurred_at`` UTC, ``properties`` a struct
        (``origin``, ``landing_page_id``, ``business_segment``,
        ``lead_type``; nulls where a field does not apply).
    """
    folder = Path(folder)
    _require(folder)
    leads = pl.read_csv(folder / LEADS_FILE, schema_overrides={"first_contact_date": pl.String})
    deals = pl.read_csv(folder / DEALS_FILE, schema_overrides={"won_date": pl.String})

    forms = leads.select(
        pl.col("mql_id").alias("lead_id"),
        pl.lit("form_submit").alias("type"),
        pl.col("first_contact_date").str.to_datetime("%Y-%m-%d", time_unit="ms", time_zone="UTC").alias("occurred_at"),
        pl.struct(
            pl.col("origin"),
            pl.col("landing_page_id"),
            pl.lit(None, pl.String).alias("business_segment"),
            pl.lit(None, pl.String).alias("lead_type"),
        ).alias("properties"),
    )
    won = deals.select(
        pl.col("mql_id").alias("lead_id"),
        pl.lit("deal_won").alias("type"),
        pl.col("won_date").str.to_datetime("%Y-%m-%d %H:%M:%S", time_unit="ms", time_zone="UTC").alias("occurred_at"),
        pl.struct(
            pl.lit(None, pl.String).alias("origin"),
            pl.lit(None, pl.String).alias("landing_page_id"),
            pl.col("business_segment").cast(pl.String),
            pl.col("lead_type").cast(pl.String),
        ).alias("properties"),
    )
    return (
        pl.concat([forms, won])
        .with_columns(
            pl.lit(SOURCE).alias("source"),
            (pl.col("lead_id") + ":" + pl.col("type")).alias("event_id"),
        )
        .select(COLUMNS)
        .sort("lead_id", "occurred_at", "event_id")
    )


def olist_event_payloads(folder: str | Path) -> list[dict[str, Any]]:
    """Return the Olist events as API event payloads (``occurred_at`` in ISO 8601).

    Null properties are dropped, so each payload carries only its own
    fields. The list suits ``POST /api/events/batch`` as a JSON array.
    """
    frame = load_olist(folder).with_columns(
        pl.col("occurred_at").dt.to_string("%Y-%m-%dT%H:%M:%S%.3f%:z")
    )
    payloads = frame.to_dicts()
    for payload in payloads:
        payload["properties"] = {key: value for key, value in payload["properties"].items() if value is not None}
    return payloads
