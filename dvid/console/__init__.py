"""The web console: pages served by ``dvid serve`` at ``/`` and ``/console/`` from files in this
package (``static/``: HTML, CSS and JavaScript modules, no build step and no network at run time)."""
