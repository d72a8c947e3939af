"""Example named transforms. A spec uses them as ``- python: {name: ..., options: {...}}``.

Functions get one pandas chunk (Arrow-backed dtypes) and return the transformed chunk. They must
be row-local: bulksync calls them chunk by chunk and never with the whole dataset.
"""

from __future__ import annotations

import pandas as pd

from bulksync.transform.registry import transform


@transform("normalize_phone")
def normalize_phone(df: pd.DataFrame, column: str = "phone", default_country: str = "+49") -> pd.DataFrame:
    """Keep digits and '+', and prefix numbers without a country code."""
    digits = df[column].str.replace(r"[^0-9+]", "", regex=True)
    local = digits.str.startswith("0").fillna(False)
    df[column] = digits.where(~local, default_country + digits.str.slice(1))
    return df
