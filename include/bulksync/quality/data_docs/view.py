"""GX Data Docs views for bulksync: GX's renderers and site builder, bulksync's templates first, values escaped.

GX's page templates load Bootstrap, jQuery, Vega and Font Awesome from CDNs and build tables and
charts with inline scripts; its ``.j2`` templates are not autoescaped, and plain strings in content
blocks (the cells of the unexpected-values table: raw data values) reach the page unescaped. These
views keep GX's renderers and most of its templates, but:

- look up bulksync's overrides (``templates/``) before GX's own, so pages link only the site's
  ``static/`` folder and contain no script at all (a strict CSP then blocks nothing the page needs);
- HTML-escape every plain string a content block holds, and the text, tooltips and attribute values
  of string templates (GX escapes only their parameters), so no data value, column name or run name
  can add markup.

GX's site builder instantiates them from its ``view`` configuration (see
:func:`bulksync.quality.data_docs.site_config`).
"""

from __future__ import annotations

import html
from pathlib import Path
from typing import Any

from great_expectations.render.view.view import DefaultJinjaIndexPageView, DefaultJinjaPageView
from jinja2 import ChoiceLoader, FileSystemLoader, pass_context

TEMPLATES = Path(__file__).parent / "templates"


def _escape(value: Any) -> Any:
    return html.escape(value, quote=True) if isinstance(value, str) else value


class _Escaping:
    """What both views change in GX's ``DefaultJinjaView``."""

    env: Any

    def _use_bulksync_templates(self) -> None:
        from bulksync.quality.report import META_CSP

        self.env.loader = ChoiceLoader([FileSystemLoader(str(TEMPLATES)), self.env.loader])
        self.env.globals["bulksync_csp"] = META_CSP

    @pass_context
    def render_content_block(
        self,
        jinja_context: Any,
        content_block: Any,
        index: Any = None,
        content_block_id: Any = None,
        render_to_markdown: bool = False,
    ) -> Any:
        """GX's rendering, with plain strings (and plain list items) HTML-escaped first."""
        if isinstance(content_block, str):
            return html.escape(content_block, quote=True)
        if isinstance(content_block, list):
            content_block = [_escape(item) for item in content_block]
        return super().render_content_block(  # type: ignore[misc]
            jinja_context, content_block, index, content_block_id, render_to_markdown
        )

    def render_string_template(self, template: Any) -> Any:
        """GX's rendering, with the tooltip and the styling attribute values escaped too."""
        if isinstance(template, dict):
            template = dict(template)
            if isinstance(template.get("template"), str):
                # GX puts column names in the template text itself; its only markup is a line break
                text = html.escape(template["template"], quote=False)
                template["template"] = text.replace("&lt;br&gt;", "<br>")
            tooltip = template.get("tooltip")
            if isinstance(tooltip, dict) and isinstance(tooltip.get("content"), str):
                template["tooltip"] = {**tooltip, "content": html.escape(tooltip["content"], quote=True)}
            styling = template.get("styling")
            if isinstance(styling, dict) and isinstance(styling.get("attributes"), dict):
                template["styling"] = {
                    **styling,
                    "attributes": {k: _escape(v) for k, v in styling["attributes"].items()},
                }
        return super().render_string_template(template)  # type: ignore[misc]


class PageView(_Escaping, DefaultJinjaPageView):
    """Validation-result and expectation-suite pages."""

    def __init__(self, custom_styles_directory: str | None = None, custom_views_directory: str | None = None) -> None:
        super().__init__(custom_styles_directory, custom_views_directory)
        self._use_bulksync_templates()
        self.env.filters["render_content_block"] = self.render_content_block
        self.env.filters["render_string_template"] = self.render_string_template


class IndexPageView(_Escaping, DefaultJinjaIndexPageView):
    """The site's ``index.html`` (GX's "Home")."""

    def __init__(self, custom_styles_directory: str | None = None, custom_views_directory: str | None = None) -> None:
        super().__init__(custom_styles_directory, custom_views_directory)
        self._use_bulksync_templates()
        self.env.filters["render_content_block"] = self.render_content_block
        self.env.filters["render_string_template"] = self.render_string_template
