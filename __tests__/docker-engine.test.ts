// Where the docker driver finds its engine: the address forms driver.conf and
// DOCKER_HOST may hold, turned into dockerode options (pure functions, no engine needed).
import { describe, expect, it } from 'vitest';
import { engineOptions, missingImageMessage, plainAddress } from '../src/drivers/docker/engine.js';

describe('engineOptions', () => {
  it('reads unix sockets and tcp addresses', () => {
    expect(engineOptions('unix:///var/run/docker.sock')).toEqual({ socketPath: '/var/run/docker.sock' });
    expect(engineOptions('tcp://127.0.0.1:2375')).toEqual({ host: '127.0.0.1', port: '2375', protocol: 'http' });
    expect(engineOptions('tcp://[::1]:2376')).toEqual({ host: '::1', port: '2376', protocol: 'http' });
    expect(engineOptions('tcp://docker.internal')).toEqual({ host: 'docker.internal', port: '2375', protocol: 'http' });
  });

  it('takes the API version with or without a leading v', () => {
    expect(engineOptions('unix:///s', '1.41').version).toBe('v1.41');
    expect(engineOptions('unix:///s', 'v1.40').version).toBe('v1.40');
  });

  it('refuses what it cannot use, saying what it expected', () => {
    expect(() => engineOptions('/var/run/docker.sock')).toThrow(/is not an address such as unix:\/\/\/var\/run\/docker\.sock/);
    expect(() => engineOptions('ssh://me@host')).toThrow(/"ssh:\/\/", which is not supported/);
    expect(() => engineOptions('unix://docker.sock')).toThrow(/absolute socket path/);
    expect(() => engineOptions('unix:///s', 'latest')).toThrow(/version "latest" is not an API version/);
  });
});

describe('plainAddress', () => {
  it('gives the socket or tcp address that downloads read directly, and none behind TLS', () => {
    expect(plainAddress(engineOptions('unix:///var/run/docker.sock'))).toEqual({ path: '/var/run/docker.sock' });
    expect(plainAddress(engineOptions('tcp://127.0.0.1:2375'))).toEqual({ host: '127.0.0.1', port: 2375 });
    expect(plainAddress(engineOptions('tcp://[::1]'))).toEqual({ host: '::1', port: 2375 });
    expect(plainAddress(engineOptions('https://docker.internal:2376'))).toBeUndefined();
  });
});

describe('missingImageMessage', () => {
  it('names the image and how to import one', () => {
    const m = missingImageMessage('local/deb:12', 'unix:///s', 'no registry');
    expect(m).toContain('image local/deb:12 is missing from the Docker engine at unix:///s');
    expect(m).toContain('(no registry)');
    expect(m).toContain('docker import rootfs.tar local/deb:12');
  });
});
