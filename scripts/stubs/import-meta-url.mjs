// import.meta.url inside the CommonJS bundle: the bundle file's own URL.
import { pathToFileURL } from 'node:url';

// eslint-disable-next-line no-undef -- __filename is the bundle's module-function parameter
export const __cesoModuleUrl = pathToFileURL(__filename).href;
