/** What `template import` asks for and what it reports, whichever path would serve it. */
import type { VmDetails } from './vm.js';

export interface ImportRequest {
  /** An .ova file, an .ovf file with its files beside it, or an http(s):// URL of an .ova. */
  source: string;
  name: string;
  datastore?: string;
  /** The port group every OVF network is mapped to. */
  network?: string;
}

/** An OVF item the host refused in the import spec (OvfUnsupportedType), left out of the template. */
export interface DroppedItem {
  /** The item's OVF ElementName, e.g. "serial0". */
  name: string;
  /** What it is, e.g. "serial port". */
  kind: string;
  /** The host's words. */
  reason: string;
}

export interface ImportOutcome extends VmDetails {
  bytesUploaded: number;
  dropped: DroppedItem[];
}
