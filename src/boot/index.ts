export { decide, type DecideContext } from './decide.js';
export { archName, classifyDhcpClient, type ClientFacts, type CpuArch, type Firmware } from './facts.js';
export type { BootPlan } from './plan.js';
export { bootStep, recordBootStep, recordTransfer } from './record.js';
export { renderIpxe, RETRY_SECONDS, sampleTemplateData, templateData } from './render.js';
export { TemplateError, TemplateStore } from './templates.js';
export { tftpVirtualFile } from './virtual-files.js';
