import { Option } from 'commander';

/** The options that say which installation a command acts on; the same for `serve`, `backup` and `restore`. */
export const configOption = () => new Option('--config <file>', 'configuration file (.toml, .yaml)').env('LIVERY_CONFIG');
export const dataDirOption = (what = 'SQLite database, catalog and TFTP root') => new Option('--data-dir <dir>', `${what} (default ./var, or the config's dataDir)`).env('LIVERY_DATA_DIR');
