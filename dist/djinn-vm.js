import './djinn-vm/index.js';
