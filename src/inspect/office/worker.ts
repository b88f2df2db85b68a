// Runs in a worker thread (see pool.ts): one attachment's scan, off the gateway's event loop.
import type { Finding } from '../finding.js';
import { scanAttachment } from './index.js';
import type { OfficeLimits } from './types.js';

export interface ScanTask {
  bytes: Uint8Array;
  filename: string | undefined;
  contentType: string | undefined;
  passwords: string[];
  limits: OfficeLimits;
  /** the attachment's place in the message (['invoice.eml', 'invoice.docm']) */
  path?: string[];
}

export default function scan(task: ScanTask): Promise<Finding[]> {
  // a view, not a copy: the bytes arrive in a SharedArrayBuffer the gateway decoded them into
  const bytes = Buffer.from(task.bytes.buffer, task.bytes.byteOffset, task.bytes.byteLength);
  return scanAttachment(bytes, task.filename, task.contentType, task.passwords, task.limits, task.path);
}
