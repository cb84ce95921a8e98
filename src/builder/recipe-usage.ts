/** The directives a recipe may use, and the usage line each error about one quotes. */
export const DIRECTIVES = ['name', 'version', 'base', 'mirror', 'user', 'rootpw', 'timezone', 'locale', 'services', 'firewall', 'file', 'overlay', 'kernel-args', 'health', '%include', '%packages', '%post', '%firewall'];


export const USAGE: Record<string, string> = {
  name: 'usage: name IMAGE-NAME',
  version: 'usage: version VERSION',
  base: 'usage: base debian SUITE ARCH [--components main,...]',
  mirror: 'usage: mirror http://HOST/debian',
  user: 'usage: user NAME [--ssh-key "KEY"]... [--sudo] [--password HASH] [--uid N] [--groups a,b] [--shell PATH]',
  rootpw: 'usage: rootpw --lock | rootpw --hash HASH',
  timezone: 'usage: timezone ZONE',
  locale: 'usage: locale LOCALE',
  services: 'usage: services [--enable a,b] [--disable c]',
  firewall: 'usage: firewall --allow tcp/22[,udp/53...]',
  file: 'usage: file SRC DEST [--mode 0644] [--owner user:group]',
  overlay: 'usage: overlay DIR',
  'kernel-args': 'usage: kernel-args "ARG ..."',
  health: 'usage: health unit UNIT | health command "SHELL COMMAND" | health timeout SECONDS',
  '%include': 'usage: %include PATH',
  '%packages': 'usage: %packages, then package names (-name removes), then %end',
  '%post': 'usage: %post [--interpreter PATH], then the script, then %end',
  '%firewall': 'usage: %firewall, then an nft ruleset, then %end',
};
