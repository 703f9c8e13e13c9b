"""The demo's closing summary, as text."""

from __future__ import annotations

from chatchannels.demo.run import DemoResult


def render_summary(result: DemoResult) -> str:
    score, stats = result.score, result.stats
    lines = [
        f"events in Kafka        {result.events}",
        f"canonical messages     {stats['messages']} (ground truth: {score.expected})",
        f"merged across hosts    {stats['merged_across_hosts']}",
        f"revisions              {stats['revisions']} ({stats['deleted_messages']} deleted)",
        f"dead letters           {stats['dead_letters']}",
        "host clocks            estimated offset   true skew",
    ]
    for host, true_skew in sorted(result.skews.items()):
        estimate = stats["hosts"].get(host, {}).get("offset_s")
        shown = "-" if estimate is None else f"{estimate:+8.1f} s"
        lines.append(f"  {host:<20} {shown:>17}   {true_skew:+6.1f} s")
    lines.append(f"site                   {result.site}")
    if result.url:
        lines.append(f"served at              {result.url}")
    verdict = "matches the ground truth" if score.perfect else f"{len(score.problems)} problems"
    lines.append(f"result                 {verdict}")
    lines += [f"  - {p}" for p in score.problems[:25]]
    if len(score.problems) > 25:
        lines.append(f"  ... and {len(score.problems) - 25} more")
    return "\n".join(lines)
