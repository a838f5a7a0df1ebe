// Loaded before Redoc on /api/redoc/. Redoc 3 draws the Redocly logo in its side menu from
// https://cdn.redoc.ly/, whatever its options (React sets the <img>'s src attribute and property
// both). That one URL is swapped here for an empty inline image, so the page asks no other host for
// anything and trips no img-src policy. Every other image and attribute is left as it is.
(function () {
  "use strict";
  var CDN = "https://cdn.redoc.ly/";
  var EMPTY_IMAGE = "data:image/svg+xml,%3Csvg xmlns='http://www.w3.org/2000/svg' width='1' height='1'/%3E";

  function local(value) {
    return String(value).indexOf(CDN) === 0 ? EMPTY_IMAGE : value;
  }

  var setAttribute = Element.prototype.setAttribute;
  Element.prototype.setAttribute = function (name, value) {
    if (this instanceof HTMLImageElement && String(name).toLowerCase() === "src") {
      value = local(value);
    }
    return setAttribute.call(this, name, value);
  };

  var src = Object.getOwnPropertyDescriptor(HTMLImageElement.prototype, "src");
  Object.defineProperty(HTMLImageElement.prototype, "src", {
    configurable: true,
    enumerable: src.enumerable,
    get: src.get,
    set: function (value) {
      src.set.call(this, local(value));
    },
  });
})();
