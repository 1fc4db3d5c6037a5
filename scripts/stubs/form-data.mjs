// Stands in for the form-data package inside the bundle: axios imports it (and with it the
// 200 kB mime-db) at start-up for multipart bodies, which ceso never sends.
export default class FormData {
  constructor() {
    throw new Error('multipart bodies are not supported in ceso');
  }
}
