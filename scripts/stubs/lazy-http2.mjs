// Stands in for node:http2 inside the bundle: axios imports it at start-up for its HTTP/2
// transport, which ceso never asks for, and loading Node's http2 costs ~5 ms per run. This loads
// it on first use instead.
// eslint-disable-next-line no-undef, @typescript-eslint/no-require-imports -- require is the bundle's module-function parameter
const load = () => require('node:http2');

export default {
  get constants() {
    return load().constants;
  },
  connect(...args) {
    return load().connect(...args);
  },
};
