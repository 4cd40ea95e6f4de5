"""`predict`: price a file of houses with the champion or a named run."""

from __future__ import annotations

import argparse

from .arguments import parse_separator
from .terminal import EXIT_REFUSED, fail


def command_predict(args: argparse.Namespace) -> int:
    """Score a file with the champion or a named run and write it with predictions."""
    from houseprice.inputs import InputLimits, OutOfRangeError
    from houseprice.tasks.scoring import (  # Prefect-free: starts in ~1 s
        describe_estimate,
        describe_input_notes,
        describe_summary,
        predict_file,
    )

    limits = InputLimits(max_imputed_fraction=args.max_imputed_fraction, strict=args.strict)
    try:
        summary = predict_file(
            args.input,
            args.output,
            args.artifacts_dir,
            args.run,
            limits,
            parse_separator(args.separator),
            args.model,
        )
    except OutOfRangeError as error:  # asked for: a refusal of the request, not a failure
        return fail(str(error), code=EXIT_REFUSED)
    print(describe_summary(summary))
    if estimate := describe_estimate(summary):
        print(f"note: {estimate}")
    for column, values in summary.unseen_categories.items():
        print(f"note: {column} levels unseen in training, scored as the reference: {values[:10]}")
    for line in describe_input_notes(summary):
        print(f"note: {line}")
    return 0
