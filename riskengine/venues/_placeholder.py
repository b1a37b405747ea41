"""The margin table used by presets whose venue tables are not in the reference."""

from riskengine.venue import Margin


def placeholder_margin(venue: str) -> Margin:
    """A single 0.5% tier, labelled as a placeholder: pass the venue's table for the replay."""
    return Margin(floors=(0.0,), rates=(0.005,),
                  source=f"placeholder: the reference has no {venue} margin table; "
                         "override margin.floors/rates with the venue's table for the replay date")
