import sys
srv=[l.split(' ',2) for l in open(sys.argv[1]).read().split('\n') if l]
srv=sorted((float(a[0]),a[1],a[2] if len(a)>2 else '') for a in srv)
asg={}; cls={}; last=None
for t,ev,info in srv:
    if ev=='cyc.assigned':
        for j in info.split(','): asg[j]=t
    if ev in('poll.in','poll.woke'): last=(ev,t,info)
    if ev=='poll.looked' and info:
        for j in info.split(','):
            if j in asg: cls[j]=(t-asg[j], 'woke' if last[0]=='poll.woke' else ('in-before-asg' if last[1]<asg[j] else 'in-after-asg'), last[2])
import collections
c=collections.defaultdict(list)
for j,(d,k,i) in cls.items(): c[k].append(d)
for k,v in c.items():
    v.sort(); print(k,len(v),'p50 %.2f p90 %.2f p99 %.2f'%(v[len(v)//2],v[int(len(v)*.9)],v[int(len(v)*.99)]))
wl=[l.split() for l in open(sys.argv[2]) if not l.startswith('gc')]
jobs=sorted((float(b)-float(a),j) for a,b,j in wl)
n=len(jobs)
for name,sel in [('all',jobs),('slowest 5%',jobs[-n//20:]),('slowest 1%',jobs[-n//100:])]:
    cc=collections.Counter(cls[j][1] for d,j in sel if j in cls); print(name, dict(cc))
# counterfactual: jobs' total minus the look wait beyond 0.35 ms for non-woke
alt=sorted(d-(max(0,cls[j][0]-0.35) if j in cls and cls[j][1]!='woke' else 0) for d,j in jobs)
print('if the look never waited: p50 %.2f p99 %.2f (now %.2f / %.2f)'%(alt[n//2],alt[int(n*.99)],jobs[n//2][0],jobs[int(n*.99)][0]))
