export { decide, type DecideContext } from './decide.js';
export { archName, classifyDhcpClient, type ClientFacts, type CpuArch, type Firmware } from './facts.js';
export type { BootPlan } from './plan.js';
export { bootStep, recordTransfer } from './record.js';
export { BootStepBatch } from './step-batch.js';
export { GRUB_TEMPLATE, renderIpxe, renderScript, RETRY_SECONDS, sampleTemplateData, templateData } from './render.js';
export { TemplateError, TemplateStore } from './templates.js';
export { GRUB_ENTRY_PATH, tftpVirtualFile } from './virtual-files.js';
export { chooseChain, grubConfigPath, type ChainChoice, type LoaderChain } from './secure-boot.js';
