// Every command, by id: oclif's "explicit" discovery, so the whole CLI is one bundle.
import Audit from './audit.js';
import ConfigInit from './config/init.js';
import ConfigValidate from './config/validate.js';
import HostTrust from './host/trust.js';
import Schema from './schema.js';
import TemplateImport from './template/import.js';
import TemplateList from './template/list.js';
import VmClone from './vm/clone.js';
import VmCreate from './vm/create.js';
import VmDelete from './vm/delete.js';
import VmInfo from './vm/info.js';
import VmIp from './vm/ip.js';
import VmList from './vm/list.js';
import VmPower from './vm/power.js';
import VmReap from './vm/reap.js';

export const COMMANDS = {
  audit: Audit,
  'config:init': ConfigInit,
  'config:validate': ConfigValidate,
  'host:trust': HostTrust,
  schema: Schema,
  'template:import': TemplateImport,
  'template:list': TemplateList,
  'vm:clone': VmClone,
  'vm:create': VmCreate,
  'vm:delete': VmDelete,
  'vm:info': VmInfo,
  'vm:ip': VmIp,
  'vm:list': VmList,
  'vm:power': VmPower,
  'vm:reap': VmReap,
};
