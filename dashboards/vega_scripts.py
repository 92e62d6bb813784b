"""Load the Vega scripts in the browser only when a tab with charts first opens.

Vega, Vega-Lite and Vega-Embed are 820 KB of JavaScript in Panel 1.9.4's
bundled copies, and the leaderboard does not use them. So each session
names only the Tabulator extension (``pn.extension("tabulator")`` inside the
session), and Panel leaves the Vega files out of the first page. When the
user first opens a tab listed in ``load_on``, a browser-side callback on the
tabs widget adds the three files, served by this dashboard, as ``<script>``
elements and reports back through a hidden text input. Only then does the
page build the views that contain Vega panes, because Panel's Vega view
draws nothing while ``window.vegaEmbed`` is missing and does not retry.
"""

from __future__ import annotations

import logging
from typing import Any, Callable

import panel as pn
import param
from panel.models.vega import VegaPlot

logger = logging.getLogger(__name__)

LOADED = "loaded"

# Script elements with ``async`` false download in parallel but run in
# insertion order, which matters because vega-lite needs vega and vega-embed
# needs both.
LOADER_JS = """
if (!tabs.includes(cb_obj.active) || window.scorestreamVegaScripts) {
  return
}
window.scorestreamVegaScripts = Promise.all(sources.map((source) => new Promise((resolve, reject) => {
  const script = document.createElement("script")
  script.src = new URL(source, document.baseURI).href
  script.async = false
  script.onload = resolve
  script.onerror = () => reject(new Error(`loading ${script.src} failed`))
  document.head.appendChild(script)
})))
window.scorestreamVegaScripts.then(
  () => { status.value = "loaded" },
  (error) => { status.value = `failed: ${error.message}` },
)
"""


class VegaScripts(param.Parameterized):
    """The Vega scripts of one browser session, loaded on the first chart tab."""

    loaded = param.Boolean(default=False, doc="True once the browser has run the three Vega scripts.")
    error = param.String(default="", doc="Why loading the scripts failed, empty otherwise.")

    def __init__(self, **params: Any) -> None:
        super().__init__(**params)
        self.status = pn.widgets.TextInput(value="", visible=False, name="vega scripts")
        self.status.param.watch(self._status_changed, "value")
        self._waiting: list[Callable[[], None]] = []

    def load_on(self, tabs: pn.Tabs, indexes: list[int]) -> None:
        """Load the scripts when the browser first shows one of the tabs at ``indexes``."""
        tabs.jscallback(
            args={"status": self.status, "tabs": indexes, "sources": list(VegaPlot.__javascript__)},
            active=LOADER_JS,
        )

    def when_loaded(self, callback: Callable[[], None]) -> None:
        """Run ``callback`` once the scripts are loaded: now, or when the browser reports them."""
        if self.loaded:
            callback()
        else:
            self._waiting.append(callback)

    def _status_changed(self, event: Any) -> None:
        if event.new == LOADED:
            # Vega panes built from now on must be in this session's
            # extensions, or Panel warns that the extension was not loaded.
            pn.extension("vega")
            self.loaded = True
            waiting, self._waiting = self._waiting, []
            for callback in waiting:
                callback()
        elif event.new:
            self.error = event.new.removeprefix("failed: ")
            logger.warning("dashboard: the browser could not load the Vega scripts: %s", self.error)
