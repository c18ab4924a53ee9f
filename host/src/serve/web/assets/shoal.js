// Live regions: an element with `data-live="URL"` follows the server-sent events at URL and
// takes each `html` event's data as its content. At `end`, an element marked
// `data-reload-on-end` reloads the page, which then shows the finished run.
"use strict";
for (const region of document.querySelectorAll("[data-live]")) {
  const source = new EventSource(region.dataset.live);
  source.addEventListener("html", (event) => {
    region.innerHTML = event.data;
  });
  source.addEventListener("end", () => {
    source.close();
    if (region.hasAttribute("data-reload-on-end")) {
      location.reload();
    }
  });
}
