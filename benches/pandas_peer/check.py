"""Checks that the pandas peer and `tierd score` gave every account the same score and tier.

    python check.py TIERD_OUT.csv PEER_OUT.csv
"""

import sys

import pandas as pd


def main():
    cols = {"id": str, "score": str, "tier": str}
    tierd = pd.read_csv(sys.argv[1], usecols=list(cols), dtype=cols, keep_default_na=False)
    peer = pd.read_csv(sys.argv[2], usecols=list(cols), dtype=cols, keep_default_na=False)
    if len(tierd) != len(peer):
        sys.exit(f"different account counts: tierd {len(tierd)}, peer {len(peer)}")
    bad = 0
    for col in cols:
        diff = tierd[col].to_numpy() != peer[col].to_numpy()
        if diff.any():
            rows = diff.nonzero()[0]
            bad += len(rows)
            print(f"{col}: {len(rows)} rows differ, first at row {rows[0] + 1}: "
                  f"tierd {tierd.iloc[rows[0]].to_dict()} peer {peer.iloc[rows[0]].to_dict()}")
    if bad:
        sys.exit(1)
    print(f"same ids, scores and tiers for all {len(tierd)} accounts; "
          f"tiers {tierd['tier'].value_counts().sort_index().to_dict()}")


if __name__ == "__main__":
    main()
