// The action's main step (action.yml runs.main). The shim must load first.
import './cjs-shim.js';
import { runMain } from './action/main.js';

await runMain();
