/** Sovereign scan: host checks and the runner that turns them into a `ScanReport` (see docs/SCANS.md). */
export * from './run-scan.js';
export * from './checks.js';
export * from './scan-config.js';
export * from './finding.js';
export * from './exec-file.js';
export * from './failed-units.js';
export * from './disk-usage.js';
export * from './listening-sockets.js';
export * from './ssh-hardening.js';
export * from './file-integrity.js';
export * from './world-writable.js';
export * from './reboot-required.js';
export * from './clock-skew.js';
