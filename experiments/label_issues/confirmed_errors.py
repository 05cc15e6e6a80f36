"""Where the 15 confirmed label errors of MNIST's test set land in each ranking.

Northcutt, Athalye & Mueller (2021, "Pervasive Label Errors in Test Sets Destabilize Machine
Learning Benchmarks") had the 100 MNIST test images that confident learning flagged checked by
five Mechanical Turk workers each; ``northcutt2021_mnist_test_mturk.csv`` holds their votes
(from the authors' public results, cleanlab/label-errors, ``mturk/mnist_mturk.json``). An image
counts as a label error when fewer than 3 of the 5 workers chose its given label: 15 of the
100, the paper's count. The 100 were chosen by confident learning on the authors' own model,
so the list favours rankings like cleanlab's; an error no one flagged is not on it.

    .venv/bin/python experiments/label_issues/confirmed_errors.py

reads ``ranking.csv`` (the real-data run of the README) and prints the table the README quotes.
"""

from pathlib import Path

import pandas as pd

HERE = Path(__file__).parent
# ranking -> (column of ranking.csv, True when a wrong label scores high)
RANKINGS = {
    "aum (memlab's)": ("aum", False),
    "confidence": ("confidence", False),
    "learned_epoch": ("learned_epoch", True),
    "forgetting_events": ("forgetting_events", True),
    "self_confidence": ("p_label", False),
    "cleanlab": ("cleanlab_rank", False),
}


def main() -> None:
    ranking = pd.read_csv(HERE / "ranking.csv").set_index("index")
    votes = pd.read_csv(HERE / "northcutt2021_mnist_test_mturk.csv").set_index("index")
    errors = votes.index[votes["votes_given"] < 3]
    print(f"{len(errors)} confirmed errors of {len(votes)} checked: {', '.join(map(str, errors))}")
    print("\n| ranking | of the 15 in its top 100 | in its top 500 | median rank of the 15 |")
    print("| --- | --- | --- | --- |")
    for name, (column, high) in RANKINGS.items():
        rank = ranking[column].rank(ascending=not high, method="average")[errors]
        print(f"| {name} | {(rank <= 100).sum()} | {(rank <= 500).sum()} | {rank.median():.0f} |")


if __name__ == "__main__":
    main()
