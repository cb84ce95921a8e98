/** Throwaway VMs that network-boot from livery: private network, QEMU, KVM probe, console. */
export { AGENT_GAVE_UP, ConsoleLog, ConsoleTimeout, HEALTH_REPORTED, PHONE_HOME, plainConsole } from './console.js';
export { chooseAccel, type AccelChoice } from './kvm.js';
export { startLabLivery, stopProcess, waitForOutput, type LabLivery, type LabLiveryOptions } from './lab.js';
export { createNamespace, createPrivateNetwork, type Namespace, type NetworkOptions, type PrivateNetwork } from './network.js';
export { OVMF_CODE, OVMF_VARS_TEMPLATE, QEMU, qemuArgs, type Accel, type ConsoleTarget, type Firmware, type QemuSpec } from './qemu.js';
export { runVmSession, type VmSessionOptions, type VmSessionResult } from './session.js';
export { startVm, type Vm, type VmOptions } from './vm.js';
