"""Reports: Markdown made only from written result tables (no training, no recomputation)."""

from lpm.reports.benchmark import benchmark_markdown
from lpm.reports.demo import demo_report
from lpm.reports.discovery import discovery_section

__all__ = ["benchmark_markdown", "demo_report", "discovery_section"]
