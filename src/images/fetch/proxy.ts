// Which proxy, if any, an image download goes through: the usual environment
// variables (HTTPS_PROXY / HTTP_PROXY, lower case first, and NO_PROXY), as curl
// and GitHub's runner set them. Loopback addresses never go through a proxy
// (a local image server, or QEMU's own forwards). The agents come from the
// well-kept https-proxy-agent / http-proxy-agent packages (CONNECT tunnels and
// absolute-URI requests).
import type { Agent } from 'node:http';
import { HttpProxyAgent } from 'http-proxy-agent';
import { HttpsProxyAgent } from 'https-proxy-agent';

type Env = Record<string, string | undefined>;

const agents = new Map<string, Agent>();

function envVar(env: Env, name: string): string | undefined {
  const v = env[name.toLowerCase()] ?? env[name.toUpperCase()];
  return v?.trim() || undefined;
}

function isLoopback(host: string): boolean {
  const h = host.replace(/^\[|\]$/g, '').toLowerCase();
  return h === 'localhost' || h.endsWith('.localhost') || h === '::1' || /^127\.\d+\.\d+\.\d+$/.test(h);
}

/** NO_PROXY: comma- or space-separated host names, domain suffixes (".example.com" or "example.com"), host:port, or "*". */
export function bypassesProxy(url: URL, env: Env = process.env): boolean {
  if (isLoopback(url.hostname)) return true;
  const list = envVar(env, 'no_proxy');
  if (!list) return false;
  const host = url.hostname.replace(/^\[|\]$/g, '').toLowerCase();
  const port = url.port || (url.protocol === 'https:' ? '443' : '80');
  for (const raw of list.split(/[\s,]+/)) {
    const entry = raw.trim().toLowerCase();
    if (!entry) continue;
    if (entry === '*') return true;
    const m = /^(.*?)(?::(\d+))?$/.exec(entry)!;
    const name = m[1].replace(/^\*?\./, '');
    if (m[2] && m[2] !== port) continue;
    if (host === name || host.endsWith(`.${name}`)) return true;
  }
  return false;
}

/** The proxy URL for `url`, or undefined for a direct connection. */
export function proxyFor(url: URL, env: Env = process.env): string | undefined {
  if (bypassesProxy(url, env)) return undefined;
  return url.protocol === 'https:' ? envVar(env, 'https_proxy') : envVar(env, 'http_proxy');
}

/** An agent that goes through the proxy for `url`, or undefined (Node's default agent). */
export function proxyAgent(url: URL, env: Env = process.env): Agent | undefined {
  const proxy = proxyFor(url, env);
  if (!proxy) return undefined;
  const key = `${url.protocol} ${proxy}`;
  let agent = agents.get(key);
  if (!agent) {
    agent = url.protocol === 'https:' ? new HttpsProxyAgent(proxy) : new HttpProxyAgent(proxy);
    agents.set(key, agent);
  }
  return agent;
}
