// The contract between the parts of the Office/archive engine (src/inspect/office/).
// One blob in (an attachment, a zip member, an OLE stream, an embedded object), findings out.
// Every scanner is pure (bytes in, findings out), bounded by the shared budget, and never throws
// on bad input: a corrupt file is an OFFICE_CORRUPT finding.
import type { Finding } from '../finding.js';
import { KeyCache } from './key-cache.js';

/**
 * Symbols the engine emits. Stable names: policies refer to them. Each finding's `part` is the path
 * inside the message, joined with ' > ' (`invoice.zip > invoice.docm > word/vbaProject.bin > Module1`).
 */
export const OFFICE_SYMBOLS = {
  /** VBA code beyond Attribute/Option lines, or PowerPoint 97 VBA */
  OFFICE_MACRO: 'OFFICE_MACRO',
  /** an auto-run trigger (Document_Open, AutoOpen, Workbook_Open, Auto_Open, ...) */
  OFFICE_MACRO_AUTOEXEC: 'OFFICE_MACRO_AUTOEXEC',
  /** suspicious keywords (Shell, CreateObject, URLDownloadToFile, ...) or IOCs */
  OFFICE_MACRO_SUSPICIOUS: 'OFFICE_MACRO_SUSPICIOUS',
  /** Excel 4.0 macro sheet with at least one formula */
  OFFICE_XLM_MACRO: 'OFFICE_XLM_MACRO',
  /** a VBA project with no code */
  OFFICE_VBA_PROJECT_EMPTY: 'OFFICE_VBA_PROJECT_EMPTY',
  OFFICE_ENCRYPTED_UNSCANNABLE: 'OFFICE_ENCRYPTED_UNSCANNABLE',
  ARCHIVE_ENCRYPTED_UNSCANNABLE: 'ARCHIVE_ENCRYPTED_UNSCANNABLE',
  /** depth, entry count, decompressed bytes, ratio or time budget exhausted (zip bomb) */
  ARCHIVE_LIMIT: 'ARCHIVE_LIMIT',
  OFFICE_CORRUPT: 'OFFICE_CORRUPT',
  /** content type by magic bytes contradicts the declared name or Content-Type */
  TYPE_MISMATCH: 'TYPE_MISMATCH',
  // containers and file types of the waves after macros (sniff-containers.ts, dangerous.ts)
  /** an archive or image recognised but not readable here (ACE, an unsupported method, a volume of a set) */
  ARCHIVE_UNSUPPORTED: 'ARCHIVE_UNSUPPORTED',
  /** a Windows program: PE (.exe .dll .scr .cpl), or named .exe .com .pif ... */
  FILE_EXECUTABLE: 'FILE_EXECUTABLE',
  /** a Windows Installer package (.msi by its CFB class) or an app package (.msix, .appinstaller) */
  FILE_INSTALLER: 'FILE_INSTALLER',
  /** a Java archive with classes and a manifest (.jar) */
  FILE_JAVA_ARCHIVE: 'FILE_JAVA_ARCHIVE',
  /** Windows Script Host and shell scripts: .js .jse .vbs .vbe .wsf .wsh .bat .cmd .ps1 ... */
  FILE_SCRIPT: 'FILE_SCRIPT',
  /** an HTML application (.hta, or HTA:APPLICATION markup) */
  FILE_HTML_APPLICATION: 'FILE_HTML_APPLICATION',
  /** compiled HTML help (.chm, ITSF) */
  FILE_CHM: 'FILE_CHM',
  /** a Windows shortcut (.lnk by its header, .url) */
  FILE_SHORTCUT: 'FILE_SHORTCUT',
  /** a disk image Windows mounts on a double click: ISO 9660, UDF, VHD, VHDX, a raw volume (.img) */
  FILE_DISK_IMAGE: 'FILE_DISK_IMAGE',
  /** a OneNote section carrying an embedded file that is not a picture */
  ONENOTE_EMBEDDED_FILE: 'ONENOTE_EMBEDDED_FILE',
  /** an HTML file whose script assembles a file from an embedded payload and has the browser save it */
  HTML_SMUGGLING: 'HTML_SMUGGLING',
} as const;

export interface OfficeLimits {
  /** containers inside containers (zip in zip in docm ...) */
  maxDepth: number;
  /** archive/zip entries looked at, across the whole message */
  maxEntries: number;
  /** decompressed bytes, across the whole message */
  maxBytes: number;
  /** decompressed/compressed ratio of one entry beyond which it is a bomb */
  maxRatio: number;
  /** password tries on encrypted archives/documents, across the whole message (a key derivation already made for the message is free) */
  maxPasswordAttempts: number;
  /** scanning time for the whole message, in the workers (time waiting for a free worker is not counted) */
  timeoutMs: number;
}

export const DEFAULT_OFFICE_LIMITS: OfficeLimits = {
  maxDepth: 8,
  maxEntries: 10_000,
  maxBytes: 256 * 1024 * 1024,
  maxRatio: 200,
  maxPasswordAttempts: 20,
  timeoutMs: 20_000,
};

/**
 * Shared by every scanner working on one message: spending it is how bombs are stopped. In a
 * worker it is this scan's share of the message's budget (src/inspect/office/message-budget.ts).
 */
export interface ScanBudget {
  bytesLeft: number;
  entriesLeft: number;
  passwordAttemptsLeft: number;
  /** Date.now() past which scanners stop and report ARCHIVE_LIMIT */
  deadline: number;
  /** the message's password key derivations, each made once */
  keys: KeyCache;
}

export interface ScanContext {
  /** where this blob sits in the message: ['invoice.zip', 'invoice.docm'] */
  path: string[];
  depth: number;
  budget: ScanBudget;
  limits: OfficeLimits;
  /** candidate passwords found in the message's text parts (e.g. "Password: 2021") */
  passwords: string[];
  /**
   * The message's passwords are not known yet (its text may come after the attachment): no password
   * is tried, an encrypted document stays locked and is scanned again once they are known, so that
   * the attempts go to the announced passwords before the well-known ones.
   */
  passwordsLater?: boolean;
  /** declared file name and Content-Type of the top-level attachment, for TYPE_MISMATCH */
  declared?: { filename?: string; contentType?: string };
}

/** Scans one blob; recursion into children goes through the dispatcher passed as `scanBlob`. */
export type BlobScanner = (bytes: Buffer, ctx: ScanContext) => Promise<Finding[]>;

export function newBudget(limits: OfficeLimits, now = Date.now()): ScanBudget {
  return {
    bytesLeft: limits.maxBytes,
    entriesLeft: limits.maxEntries,
    passwordAttemptsLeft: limits.maxPasswordAttempts,
    deadline: now + limits.timeoutMs,
    keys: new KeyCache(),
  };
}

/** A child context: one level deeper, one path element longer, same budget. */
export function child(ctx: ScanContext, name: string): ScanContext {
  return { ...ctx, path: [...ctx.path, name], depth: ctx.depth + 1, declared: undefined };
}

export function partOf(ctx: ScanContext, ...more: string[]): string {
  return [...ctx.path, ...more].join(' > ');
}
