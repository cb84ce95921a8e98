/** The image builder: recipes in, bootable bundles (kernel, initrd, rootfs, manifest) out. */
export { buildImage, ARTIFACT_NAMES, type BuildOptions, type BuildResult } from './build.js';
export { pruneBases } from './bootstrap.js';
export { parseRecipe, RecipeError } from './recipe.js';
export type * from './recipe-types.js';
export { BuildError, type StepEvent } from './steps.js';
export { PreflightError } from './preflight.js';
export type { Compression } from './squashfs.js';
export { systemDebianMirror } from './mirror.js';
export { bundleFileName, nextVersion } from './version.js';
