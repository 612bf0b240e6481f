// The action's post step (action.yml runs.post, always runs). The shim must load first.
import './cjs-shim.js';
import { runPost } from './action/post.js';

await runPost();
